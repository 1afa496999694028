-- shared.user_combos
WITH grouped AS (
  SELECT
    user_id,
    os,
    region,
    SUM(launches) AS launches,
    SUM(duration_ms) AS duration_ms,
    MIN(first_launch_day) AS first_launch_day,
    ARRAY_AGG(first_launch_in_span) FILTER(WHERE
      launches > 0) AS launch_days,
    MIN(first_launch_in_span) AS first_combo_day,
    MAX(last_launch_in_span) AS last_launch_day
  FROM (
    SELECT
      user_id,
      os,
      region,
      launches,
      duration_ms,
      first_launch_day,
      CASE WHEN launches > 0 THEN day END AS first_launch_in_span,
      CASE WHEN launches > 0 THEN day END AS last_launch_in_span,
      latest_launch_time,
      latest_launch_event_id,
      gender,
      age_group,
      device_brand,
      device_model,
      tiktok_version
    FROM user_days
  ) AS user_rows
  GROUP BY
    user_id,
    os,
    region
)
SELECT
  grouped.user_id,
  grouped.os,
  grouped.region,
  grouped.launches,
  grouped.duration_ms,
  grouped.first_launch_day,
  grouped.launch_days,
  grouped.first_combo_day,
  CASE
    WHEN NOT latest_row.user_id IS NULL
    THEN CAST(ROW(
      CAST(latest_row.latest_launch_time AS TIMESTAMP),
      CAST(COALESCE(latest_row.latest_launch_event_id, '') AS VARCHAR)
    ) AS ROW(time TIMESTAMP, event_id VARCHAR))
  END AS recency,
  CASE
    WHEN NOT latest_row.user_id IS NULL
    THEN CAST(ROW(
      CAST(COALESCE(latest_row.gender, 'unknown') AS VARCHAR),
      CAST(COALESCE(latest_row.age_group, 'unknown') AS VARCHAR),
      CAST(COALESCE(latest_row.region, 'unknown') AS VARCHAR),
      CAST(COALESCE(latest_row.device_brand, 'unknown') AS VARCHAR),
      CAST(COALESCE(latest_row.device_model, 'unknown') AS VARCHAR),
      CAST(COALESCE(latest_row.tiktok_version, 'unknown') AS VARCHAR)
    ) AS ROW(
      gender VARCHAR,
      age_group VARCHAR,
      region VARCHAR,
      device_brand VARCHAR,
      device_model VARCHAR,
      tiktok_version VARCHAR
    ))
  END AS latest
FROM grouped
LEFT JOIN (
  SELECT
    user_id,
    os,
    region,
    launches,
    duration_ms,
    first_launch_day,
    CASE WHEN launches > 0 THEN day END AS first_launch_in_span,
    CASE WHEN launches > 0 THEN day END AS last_launch_in_span,
    latest_launch_time,
    latest_launch_event_id,
    gender,
    age_group,
    device_brand,
    device_model,
    tiktok_version
  FROM user_days
) AS latest_row
  ON latest_row.user_id = grouped.user_id
  AND latest_row.os = grouped.os
  AND latest_row.region = grouped.region
  AND latest_row.last_launch_in_span = grouped.last_launch_day;

-- shared.launch_users
SELECT
  user_id,
  COUNT(*) = 1 AS one_segment_pair,
  MIN(first_launch_day) AS first_day
FROM user_combos
WHERE
  launches > 0
GROUP BY
  user_id;

-- shared.cohort_combos
SELECT
  user_id,
  os,
  region,
  ARRAY_AGG(day) AS launch_days,
  MIN(day) AS first_combo_day
FROM cohort_launches
GROUP BY
  user_id,
  os,
  region;

-- attributes.main
WITH combos AS (
  /* each user, os and region's latest launch of the period */
  SELECT
    user_id,
    os,
    region,
    recency,
    latest
  FROM user_combos
  WHERE
    launches > 0
), users AS (
  SELECT
    user_id,
    one_segment_pair,
    CASE WHEN first_day >= CAST('2026-11-28' AS DATE) THEN 1 ELSE 0 END AS is_new
  FROM launch_users
), marked AS (
  SELECT
    combos.*,
    users.one_segment_pair,
    users.is_new
  FROM combos
  JOIN users
    ON users.user_id = combos.user_id
), per_user AS (
  /* the latest launch of each user in each segment */
  SELECT
    *
  FROM (
    SELECT
      segment,
      user_id,
      latest,
      is_new
    FROM (
      SELECT
        'all' AS segment,
        *
      FROM (
        SELECT
          *
        FROM marked
        WHERE
          one_segment_pair
      ) AS one_pair
      UNION ALL
      SELECT
        CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
        *
      FROM (
        SELECT
          *
        FROM marked
        WHERE
          one_segment_pair
      ) AS one_pair
      UNION ALL
      SELECT
        CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
        *
      FROM (
        SELECT
          *
        FROM marked
        WHERE
          one_segment_pair
      ) AS one_pair
    ) AS expanded
    UNION ALL
    SELECT
      segment,
      user_id,
      MAX_BY(latest, recency) AS latest,
      MIN(is_new) AS is_new
    FROM (
      SELECT
        'all' AS segment,
        *
      FROM (
        SELECT
          *
        FROM marked
        WHERE
          NOT one_segment_pair
      ) AS several
      UNION ALL
      SELECT
        CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
        *
      FROM (
        SELECT
          *
        FROM marked
        WHERE
          NOT one_segment_pair
      ) AS several
      UNION ALL
      SELECT
        CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
        *
      FROM (
        SELECT
          *
        FROM marked
        WHERE
          NOT one_segment_pair
      ) AS several
    ) AS expanded
    GROUP BY
      segment,
      user_id
  ) AS per_user
), attribute_values AS (
  SELECT
    segment,
    is_new,
    'gender' AS attribute,
    latest.gender AS value
  FROM per_user
  UNION ALL
  SELECT
    segment,
    is_new,
    'age_group' AS attribute,
    latest.age_group AS value
  FROM per_user
  UNION ALL
  SELECT
    segment,
    is_new,
    'region' AS attribute,
    latest.region AS value
  FROM per_user
  UNION ALL
  SELECT
    segment,
    is_new,
    'brand' AS attribute,
    latest.device_brand AS value
  FROM per_user
  UNION ALL
  SELECT
    segment,
    is_new,
    'model' AS attribute,
    latest.device_model AS value
  FROM per_user
  UNION ALL
  SELECT
    segment,
    is_new,
    'tiktok_version' AS attribute,
    latest.tiktok_version AS value
  FROM per_user
)
SELECT
  segment,
  attribute,
  value,
  COUNT(*) AS active_users,
  SUM(is_new) AS new_users
FROM attribute_values
GROUP BY
  segment,
  attribute,
  value;

-- entry_points.main
WITH combos AS (
  SELECT
    user_id,
    os,
    region,
    entry_point,
    SUM(launches) AS launches
  FROM entry_points AS entry_rows
  GROUP BY
    user_id,
    os,
    region,
    entry_point
), user_entries AS (
  /* a launch through an entry point is a launch: its user is a launch user */
  SELECT
    combos.entry_point,
    combos.user_id,
    combos.os,
    combos.region,
    launch_users.one_segment_pair,
    CASE WHEN launch_users.first_day >= CAST('2026-11-28' AS DATE) THEN 1 ELSE 0 END AS is_new
  FROM combos
  JOIN launch_users
    ON launch_users.user_id = combos.user_id
), entry_users AS (
  SELECT
    segment,
    entry_point,
    users AS active_users,
    is_new AS new_users
  FROM (
    WITH one_pair AS (
      SELECT
        os,
        region,
        entry_point,
        COUNT(*) AS users,
        SUM(is_new) AS is_new
      FROM user_entries
      WHERE
        one_segment_pair
      GROUP BY
        os,
        region,
        entry_point
    ), several_pairs AS (
      SELECT DISTINCT
        segment,
        user_id,
        entry_point,
        is_new
      FROM (
        SELECT
          'all' AS segment,
          user_id,
          entry_point,
          is_new
        FROM (
          SELECT
            *
          FROM user_entries
          WHERE
            NOT one_segment_pair
        ) AS several
        UNION ALL
        SELECT
          CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
          user_id,
          entry_point,
          is_new
        FROM (
          SELECT
            *
          FROM user_entries
          WHERE
            NOT one_segment_pair
        ) AS several
        UNION ALL
        SELECT
          CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
          user_id,
          entry_point,
          is_new
        FROM (
          SELECT
            *
          FROM user_entries
          WHERE
            NOT one_segment_pair
        ) AS several
      ) AS expanded
    )
    SELECT
      segment,
      entry_point,
      SUM(users) AS users,
      SUM(is_new) AS is_new
    FROM (
      SELECT
        segment,
        entry_point,
        users,
        is_new
      FROM (
        SELECT
          'all' AS segment,
          entry_point,
          users,
          is_new
        FROM one_pair
        UNION ALL
        SELECT
          CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
          entry_point,
          users,
          is_new
        FROM one_pair
        UNION ALL
        SELECT
          CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
          entry_point,
          users,
          is_new
        FROM one_pair
      ) AS expanded
      UNION ALL
      SELECT
        segment,
        entry_point,
        1 AS users,
        is_new
      FROM several_pairs
    ) AS parts
    GROUP BY
      segment,
      entry_point
  ) AS counted
), pair_launches AS (
  /* launches add up: summed per os, region and entry point before the segments */
  SELECT
    os,
    region,
    entry_point,
    SUM(launches) AS launches
  FROM combos
  GROUP BY
    os,
    region,
    entry_point
), launch_counts AS (
  SELECT
    segment,
    entry_point,
    SUM(launches) AS launch_sessions
  FROM (
    SELECT
      'all' AS segment,
      entry_point,
      launches
    FROM pair_launches
    UNION ALL
    SELECT
      CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
      entry_point,
      launches
    FROM pair_launches
    UNION ALL
    SELECT
      CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
      entry_point,
      launches
    FROM pair_launches
  ) AS expanded
  GROUP BY
    segment,
    entry_point
), entry_sessions AS (
  /* (no filter to the sessions that ended: over a long range nearly all did, and */
  /* the join below filters as cheaply as a semi-join would) */
  SELECT DISTINCT
    entry_point,
    session_id
  FROM entry_points
), session_totals AS (
  /* summed per os, region and entry point before they go into segments: integer */
  /* sums are exact (as avg's double sum of integers is, below 2^53 ms), so their */
  /* quotient is the mean avg() gives */
  SELECT
    session_ends.os,
    session_ends.region,
    entry_sessions.entry_point,
    SUM(session_ends.duration_ms) AS duration_ms,
    COUNT(*) AS session_ends
  FROM session_ends
  JOIN entry_sessions
    ON entry_sessions.session_id = session_ends.session_id
  GROUP BY
    session_ends.os,
    session_ends.region,
    entry_sessions.entry_point
), session_durations AS (
  SELECT
    segment,
    entry_point,
    CAST(SUM(duration_ms) AS DOUBLE) / SUM(session_ends) AS average_duration_per_session_ms
  FROM (
    SELECT
      'all' AS segment,
      entry_point,
      duration_ms,
      session_ends
    FROM session_totals
    UNION ALL
    SELECT
      CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
      entry_point,
      duration_ms,
      session_ends
    FROM session_totals
    UNION ALL
    SELECT
      CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
      entry_point,
      duration_ms,
      session_ends
    FROM session_totals
  ) AS expanded
  GROUP BY
    segment,
    entry_point
)
SELECT
  launch_counts.segment,
  launch_counts.entry_point,
  entry_users.active_users,
  entry_users.new_users,
  launch_counts.launch_sessions,
  session_durations.average_duration_per_session_ms
FROM launch_counts
JOIN entry_users
  ON entry_users.segment = launch_counts.segment
  AND entry_users.entry_point = launch_counts.entry_point
LEFT JOIN session_durations
  ON session_durations.segment = launch_counts.segment
  AND session_durations.entry_point = launch_counts.entry_point;

-- funnel.main
SELECT
  segment,
  event_name AS stage,
  SUM(events) AS pv
FROM (
  SELECT
    'all' AS segment,
    event_name,
    events
  FROM (
    SELECT
      os,
      region,
      event_name,
      events
    FROM event_counts
    WHERE
      event_name IN (
        'entrance_exposure',
        'entrance_click',
        'minis_visit',
        'last_free_episode_watch',
        'third_party_payment_panel_show',
        'third_party_payment_panel_click',
        'tiktok_payment_panel_show',
        'tiktok_payment_panel_click',
        'recharge_order',
        'redeem_order'
      )
  ) AS stage_rows
  UNION ALL
  SELECT
    CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
    event_name,
    events
  FROM (
    SELECT
      os,
      region,
      event_name,
      events
    FROM event_counts
    WHERE
      event_name IN (
        'entrance_exposure',
        'entrance_click',
        'minis_visit',
        'last_free_episode_watch',
        'third_party_payment_panel_show',
        'third_party_payment_panel_click',
        'tiktok_payment_panel_show',
        'tiktok_payment_panel_click',
        'recharge_order',
        'redeem_order'
      )
  ) AS stage_rows
  UNION ALL
  SELECT
    CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
    event_name,
    events
  FROM (
    SELECT
      os,
      region,
      event_name,
      events
    FROM event_counts
    WHERE
      event_name IN (
        'entrance_exposure',
        'entrance_click',
        'minis_visit',
        'last_free_episode_watch',
        'third_party_payment_panel_show',
        'third_party_payment_panel_click',
        'tiktok_payment_panel_show',
        'tiktok_payment_panel_click',
        'recharge_order',
        'redeem_order'
      )
  ) AS stage_rows
) AS expanded
GROUP BY
  segment,
  event_name;

-- ltv.main
WITH new_combos AS (
  SELECT
    cohort_combos.user_id,
    cohort_combos.os,
    cohort_combos.region,
    cohort_combos.first_combo_day,
    first_launch.first_day
  FROM cohort_combos
  JOIN first_launch
    ON first_launch.user_id = cohort_combos.user_id
  WHERE
    first_launch.first_day IN (
      CAST('2026-10-29' AS DATE),
      CAST('2026-11-21' AS DATE),
      CAST('2026-11-28' AS DATE)
    )
), new_users AS (
  SELECT
    user_id,
    MIN(first_day) AS first_day,
    COUNT(*) = 1 AS one_segment_pair
  FROM new_combos
  GROUP BY
    user_id
), user_windows AS (
  SELECT
    new_users.user_id,
    new_users.one_segment_pair,
    windows.label,
    windows.active_from,
    windows.active_to,
    windows.revenue_from,
    windows.revenue_to
  FROM new_users
  JOIN (VALUES
    (
      'd0',
      CAST('2026-11-28' AS DATE),
      CAST('2026-11-28' AS DATE),
      CAST('2026-11-28' AS DATE),
      CAST('2026-11-28' AS DATE),
      CAST('2026-11-28' AS DATE)
    ),
    (
      'd7',
      CAST('2026-11-21' AS DATE),
      CAST('2026-11-21' AS DATE),
      CAST('2026-11-21' AS DATE),
      CAST('2026-11-21' AS DATE),
      CAST('2026-11-28' AS DATE)
    ),
    (
      'd30',
      CAST('2026-10-29' AS DATE),
      CAST('2026-10-29' AS DATE),
      CAST('2026-10-29' AS DATE),
      CAST('2026-10-29' AS DATE),
      CAST('2026-11-28' AS DATE)
    )) AS windows(label, cohort_date, active_from, active_to, revenue_from, revenue_to)
    ON windows.cohort_date = new_users.first_day
), user_revenue AS (
  /* revenue is of any segment: summed per user and window before the segments */
  SELECT
    user_windows.user_id,
    user_windows.label,
    SUM(recharges.amount) AS revenue
  FROM user_windows
  JOIN recharges
    ON recharges.user_id = user_windows.user_id
    AND recharges.day >= user_windows.revenue_from
    AND recharges.day <= user_windows.revenue_to
  GROUP BY
    user_windows.user_id,
    user_windows.label
), members AS (
  /* a new user is in a window's cohort in a segment when they launched in it in */
  /* the window's activity span; no span starts after its cohort day (the user's */
  /* first launch ever), so that is when a first launch of one of their os and */
  /* region pairs in the segment is in the span (a range's span is the range, a */
  /* day's is the cohort day) */
  SELECT
    new_combos.user_id,
    new_combos.os,
    new_combos.region,
    user_windows.label,
    user_windows.one_segment_pair,
    user_revenue.revenue
  FROM new_combos
  JOIN user_windows
    ON user_windows.user_id = new_combos.user_id
  LEFT JOIN user_revenue
    ON user_revenue.user_id = new_combos.user_id
    AND user_revenue.label = user_windows.label
  WHERE
    new_combos.first_combo_day >= user_windows.active_from
    AND new_combos.first_combo_day <= user_windows.active_to
)
SELECT
  segment,
  label,
  users AS cohort_size,
  revenue
FROM (
  WITH one_pair AS (
    SELECT
      os,
      region,
      label,
      COUNT(*) AS users,
      SUM(revenue) AS revenue
    FROM members
    WHERE
      one_segment_pair
    GROUP BY
      os,
      region,
      label
  ), several_pairs AS (
    SELECT DISTINCT
      segment,
      user_id,
      label,
      revenue
    FROM (
      SELECT
        'all' AS segment,
        user_id,
        label,
        revenue
      FROM (
        SELECT
          *
        FROM members
        WHERE
          NOT one_segment_pair
      ) AS several
      UNION ALL
      SELECT
        CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
        user_id,
        label,
        revenue
      FROM (
        SELECT
          *
        FROM members
        WHERE
          NOT one_segment_pair
      ) AS several
      UNION ALL
      SELECT
        CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
        user_id,
        label,
        revenue
      FROM (
        SELECT
          *
        FROM members
        WHERE
          NOT one_segment_pair
      ) AS several
    ) AS expanded
  )
  SELECT
    segment,
    label,
    SUM(users) AS users,
    SUM(revenue) AS revenue
  FROM (
    SELECT
      segment,
      label,
      users,
      revenue
    FROM (
      SELECT
        'all' AS segment,
        label,
        users,
        revenue
      FROM one_pair
      UNION ALL
      SELECT
        CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
        label,
        users,
        revenue
      FROM one_pair
      UNION ALL
      SELECT
        CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
        label,
        users,
        revenue
      FROM one_pair
    ) AS expanded
    UNION ALL
    SELECT
      segment,
      label,
      1 AS users,
      revenue
    FROM several_pairs
  ) AS parts
  GROUP BY
    segment,
    label
) AS counted;

-- orders.main
WITH payer_orders AS (
  SELECT
    orders.os,
    orders.region,
    orders.event_name,
    orders.amount,
    orders.product_id,
    CASE
      WHEN first_recharge.first_day >= CAST('2026-11-28' AS DATE)
      AND first_recharge.first_day <= CAST('2026-11-28' AS DATE)
      THEN 'new_payers'
      WHEN first_recharge.first_day < CAST('2026-11-28' AS DATE)
      THEN 'returning_payers'
    END AS payer_group
  FROM orders
  LEFT JOIN first_recharge
    ON first_recharge.user_id = orders.user_id
), grouped AS (
  SELECT
    os,
    region,
    'all' AS payer_group,
    event_name,
    amount,
    product_id
  FROM payer_orders
  UNION ALL
  SELECT
    os,
    region,
    payer_group,
    event_name,
    amount,
    product_id
  FROM payer_orders
  WHERE
    NOT payer_group IS NULL
)
SELECT
  segment,
  payer_group,
  SUM(CASE WHEN event_name = 'recharge_order' THEN amount END) AS gmv,
  SUM(CASE WHEN event_name = 'recharge_order' THEN 1 ELSE 0 END) AS recharge_orders,
  SUM(CASE WHEN event_name = 'redeem_order' THEN 1 ELSE 0 END) AS redeem_orders
FROM (
  SELECT
    'all' AS segment,
    payer_group,
    event_name,
    amount
  FROM grouped
  UNION ALL
  SELECT
    CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
    payer_group,
    event_name,
    amount
  FROM grouped
  UNION ALL
  SELECT
    CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
    payer_group,
    event_name,
    amount
  FROM grouped
) AS expanded
GROUP BY
  segment,
  payer_group;

-- orders.top_products
WITH payer_orders AS (
  SELECT
    orders.os,
    orders.region,
    orders.event_name,
    orders.amount,
    orders.product_id,
    CASE
      WHEN first_recharge.first_day >= CAST('2026-11-28' AS DATE)
      AND first_recharge.first_day <= CAST('2026-11-28' AS DATE)
      THEN 'new_payers'
      WHEN first_recharge.first_day < CAST('2026-11-28' AS DATE)
      THEN 'returning_payers'
    END AS payer_group
  FROM orders
  LEFT JOIN first_recharge
    ON first_recharge.user_id = orders.user_id
), grouped AS (
  SELECT
    os,
    region,
    'all' AS payer_group,
    event_name,
    amount,
    product_id
  FROM payer_orders
  UNION ALL
  SELECT
    os,
    region,
    payer_group,
    event_name,
    amount,
    product_id
  FROM payer_orders
  WHERE
    NOT payer_group IS NULL
), counted AS (
  SELECT
    segment,
    payer_group,
    product_id,
    COUNT(*) AS orders
  FROM (
    SELECT
      'all' AS segment,
      payer_group,
      event_name,
      product_id
    FROM grouped
    UNION ALL
    SELECT
      CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
      payer_group,
      event_name,
      product_id
    FROM grouped
    UNION ALL
    SELECT
      CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
      payer_group,
      event_name,
      product_id
    FROM grouped
  ) AS expanded
  WHERE
    event_name = 'redeem_order'
  GROUP BY
    segment,
    payer_group,
    product_id
), ranked AS (
  SELECT
    counted.*,
    ROW_NUMBER() OVER (PARTITION BY segment, payer_group ORDER BY orders DESC, product_id) AS position
  FROM counted
)
SELECT
  segment,
  payer_group,
  product_id,
  orders,
  position
FROM ranked
WHERE
  position <= 10;

-- payers.main
WITH per_user AS (
  SELECT
    segment,
    user_id,
    COUNT(*) AS recharge_orders
  FROM (
    SELECT
      'all' AS segment,
      user_id
    FROM (
      SELECT
        user_id,
        os,
        region
      FROM orders
      WHERE
        event_name = 'recharge_order'
    ) AS recharges
    UNION ALL
    SELECT
      CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
      user_id
    FROM (
      SELECT
        user_id,
        os,
        region
      FROM orders
      WHERE
        event_name = 'recharge_order'
    ) AS recharges
    UNION ALL
    SELECT
      CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
      user_id
    FROM (
      SELECT
        user_id,
        os,
        region
      FROM orders
      WHERE
        event_name = 'recharge_order'
    ) AS recharges
  ) AS expanded
  GROUP BY
    segment,
    user_id
)
SELECT
  segment,
  COUNT(*) AS paying_users,
  SUM(CASE WHEN recharge_orders >= 2 THEN 1 ELSE 0 END) AS repeat_paying_users
FROM per_user
GROUP BY
  segment;

-- performance.main
SELECT
  segment,
  SUM(events) AS launches,
  SUM(successful_launches) AS successful_launches,
  SUM(launch_ms_total) AS launch_ms_total,
  SUM(timed_launches) AS timed_launches
FROM (
  SELECT
    'all' AS segment,
    events,
    successful_launches,
    launch_ms_total,
    timed_launches
  FROM (
    SELECT
      os,
      region,
      events,
      successful_launches,
      launch_ms_total,
      timed_launches
    FROM event_counts
    WHERE
      event_name = 'app_launch'
  ) AS launches
  UNION ALL
  SELECT
    CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
    events,
    successful_launches,
    launch_ms_total,
    timed_launches
  FROM (
    SELECT
      os,
      region,
      events,
      successful_launches,
      launch_ms_total,
      timed_launches
    FROM event_counts
    WHERE
      event_name = 'app_launch'
  ) AS launches
  UNION ALL
  SELECT
    CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
    events,
    successful_launches,
    launch_ms_total,
    timed_launches
  FROM (
    SELECT
      os,
      region,
      events,
      successful_launches,
      launch_ms_total,
      timed_launches
    FROM event_counts
    WHERE
      event_name = 'app_launch'
  ) AS launches
) AS expanded
GROUP BY
  segment;

-- retention.main
WITH pairs AS (
  SELECT
    user_id,
    os,
    region,
    launch_days AS pair_days
  FROM cohort_combos
), users AS (
  SELECT
    pairs.user_id,
    COUNT(*) = 1 AS one_segment_pair,
    FLATTEN(ARRAY_AGG(pairs.pair_days)) AS launch_days,
    MIN(first_launch.first_day) AS first_day
  FROM pairs
  JOIN first_launch
    ON first_launch.user_id = pairs.user_id
  GROUP BY
    pairs.user_id
), cohort_days AS (
  SELECT
    pairs.user_id,
    pairs.os,
    pairs.region,
    users.one_segment_pair,
    users.first_day,
    users.launch_days,
    IF(_u.pos = _u_2.pos_2, _u_2.cohort_date) AS cohort_date
  FROM pairs
  JOIN users
    ON users.user_id = pairs.user_id
  CROSS JOIN UNNEST(SEQUENCE(1, GREATEST(CARDINALITY(pairs.pair_days)))) AS _u(pos)
  CROSS JOIN UNNEST(pairs.pair_days) WITH ORDINALITY AS _u_2(cohort_date, pos_2)
  WHERE
    _u.pos = _u_2.pos_2
    OR (
      _u.pos > CARDINALITY(pairs.pair_days)
      AND _u_2.pos_2 = CARDINALITY(pairs.pair_days)
    )
), flagged AS (
  SELECT
    user_id,
    os,
    region,
    one_segment_pair,
    cohort_date,
    CASE WHEN first_day = cohort_date THEN 1 ELSE 0 END AS is_new,
    CASE
      WHEN cohort_date BETWEEN CAST('2026-11-27' AS DATE) AND CAST('2026-11-27' AS DATE)
      AND CONTAINS(launch_days, cohort_date + 1)
      THEN 1
      ELSE 0
    END AS d1,
    CASE
      WHEN cohort_date BETWEEN CAST('2026-11-21' AS DATE) AND CAST('2026-11-21' AS DATE)
      AND CONTAINS(launch_days, cohort_date + 7)
      THEN 1
      ELSE 0
    END AS d7,
    CASE
      WHEN cohort_date BETWEEN CAST('2026-11-14' AS DATE) AND CAST('2026-11-14' AS DATE)
      AND CONTAINS(launch_days, cohort_date + 14)
      THEN 1
      ELSE 0
    END AS d14,
    CASE
      WHEN cohort_date BETWEEN CAST('2026-10-29' AS DATE) AND CAST('2026-10-29' AS DATE)
      AND CONTAINS(launch_days, cohort_date + 30)
      THEN 1
      ELSE 0
    END AS d30
  FROM cohort_days
  WHERE
    cohort_date IN (
      CAST('2026-10-29' AS DATE),
      CAST('2026-11-14' AS DATE),
      CAST('2026-11-21' AS DATE),
      CAST('2026-11-27' AS DATE)
    )
), cohort_rows AS (
  SELECT
    *,
    d1 * is_new AS d1_new,
    d7 * is_new AS d7_new,
    d14 * is_new AS d14_new,
    d30 * is_new AS d30_new
  FROM flagged
)
SELECT
  segment,
  cohort_date,
  users AS active_users,
  is_new AS new_users,
  d1 AS d1_active_users,
  d1_new AS d1_new_users,
  d7 AS d7_active_users,
  d7_new AS d7_new_users,
  d14 AS d14_active_users,
  d14_new AS d14_new_users,
  d30 AS d30_active_users,
  d30_new AS d30_new_users
FROM (
  WITH one_pair AS (
    SELECT
      os,
      region,
      cohort_date,
      COUNT(*) AS users,
      SUM(is_new) AS is_new,
      SUM(d1) AS d1,
      SUM(d1_new) AS d1_new,
      SUM(d7) AS d7,
      SUM(d7_new) AS d7_new,
      SUM(d14) AS d14,
      SUM(d14_new) AS d14_new,
      SUM(d30) AS d30,
      SUM(d30_new) AS d30_new
    FROM cohort_rows
    WHERE
      one_segment_pair
    GROUP BY
      os,
      region,
      cohort_date
  ), several_pairs AS (
    SELECT DISTINCT
      segment,
      user_id,
      cohort_date,
      is_new,
      d1,
      d1_new,
      d7,
      d7_new,
      d14,
      d14_new,
      d30,
      d30_new
    FROM (
      SELECT
        'all' AS segment,
        user_id,
        cohort_date,
        is_new,
        d1,
        d1_new,
        d7,
        d7_new,
        d14,
        d14_new,
        d30,
        d30_new
      FROM (
        SELECT
          *
        FROM cohort_rows
        WHERE
          NOT one_segment_pair
      ) AS several
      UNION ALL
      SELECT
        CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
        user_id,
        cohort_date,
        is_new,
        d1,
        d1_new,
        d7,
        d7_new,
        d14,
        d14_new,
        d30,
        d30_new
      FROM (
        SELECT
          *
        FROM cohort_rows
        WHERE
          NOT one_segment_pair
      ) AS several
      UNION ALL
      SELECT
        CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
        user_id,
        cohort_date,
        is_new,
        d1,
        d1_new,
        d7,
        d7_new,
        d14,
        d14_new,
        d30,
        d30_new
      FROM (
        SELECT
          *
        FROM cohort_rows
        WHERE
          NOT one_segment_pair
      ) AS several
    ) AS expanded
  )
  SELECT
    segment,
    cohort_date,
    SUM(users) AS users,
    SUM(is_new) AS is_new,
    SUM(d1) AS d1,
    SUM(d1_new) AS d1_new,
    SUM(d7) AS d7,
    SUM(d7_new) AS d7_new,
    SUM(d14) AS d14,
    SUM(d14_new) AS d14_new,
    SUM(d30) AS d30,
    SUM(d30_new) AS d30_new
  FROM (
    SELECT
      segment,
      cohort_date,
      users,
      is_new,
      d1,
      d1_new,
      d7,
      d7_new,
      d14,
      d14_new,
      d30,
      d30_new
    FROM (
      SELECT
        'all' AS segment,
        cohort_date,
        users,
        is_new,
        d1,
        d1_new,
        d7,
        d7_new,
        d14,
        d14_new,
        d30,
        d30_new
      FROM one_pair
      UNION ALL
      SELECT
        CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
        cohort_date,
        users,
        is_new,
        d1,
        d1_new,
        d7,
        d7_new,
        d14,
        d14_new,
        d30,
        d30_new
      FROM one_pair
      UNION ALL
      SELECT
        CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
        cohort_date,
        users,
        is_new,
        d1,
        d1_new,
        d7,
        d7_new,
        d14,
        d14_new,
        d30,
        d30_new
      FROM one_pair
    ) AS expanded
    UNION ALL
    SELECT
      segment,
      cohort_date,
      1 AS users,
      is_new,
      d1,
      d1_new,
      d7,
      d7_new,
      d14,
      d14_new,
      d30,
      d30_new
    FROM several_pairs
  ) AS parts
  GROUP BY
    segment,
    cohort_date
) AS counted;

-- segments.main
SELECT
  'all' AS segment
UNION
SELECT
  segment
FROM (
  SELECT
    'all' AS segment,
    os
  FROM (
    SELECT DISTINCT
      os,
      region
    FROM event_counts
  ) AS pairs
  UNION ALL
  SELECT
    CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
    os
  FROM (
    SELECT DISTINCT
      os,
      region
    FROM event_counts
  ) AS pairs
  UNION ALL
  SELECT
    CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
    os
  FROM (
    SELECT DISTINCT
      os,
      region
    FROM event_counts
  ) AS pairs
) AS expanded;

-- sessions.main
SELECT
  segment,
  CASE
    WHEN COUNT(CAST(duration_ms AS DOUBLE)) = 0
    THEN NULL
    ELSE CAST((
      ELEMENT_AT(
        ARRAY_SORT(
          ARRAY_AGG(CAST(duration_ms AS DOUBLE)) FILTER(WHERE
            NOT CAST(duration_ms AS DOUBLE) IS NULL)
        ),
        CAST(CAST(TRUNCATE(CAST(COUNT(CAST(duration_ms AS DOUBLE)) + 1 AS DOUBLE) / 2) AS BIGINT) AS BIGINT)
      ) + ELEMENT_AT(
        ARRAY_SORT(
          ARRAY_AGG(CAST(duration_ms AS DOUBLE)) FILTER(WHERE
            NOT CAST(duration_ms AS DOUBLE) IS NULL)
        ),
        CAST((
          CAST(TRUNCATE(CAST(COUNT(CAST(duration_ms AS DOUBLE)) AS DOUBLE) / 2) AS BIGINT)
        ) + 1 AS BIGINT)
      )
    ) AS DOUBLE) / 2.0
  END AS median_duration_per_session_ms
FROM (
  SELECT
    'all' AS segment,
    duration_ms
  FROM session_ends
  UNION ALL
  SELECT
    CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
    duration_ms
  FROM session_ends
  UNION ALL
  SELECT
    CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
    duration_ms
  FROM session_ends
) AS expanded
GROUP BY
  segment;

-- total_users.main
SELECT
  segment,
  total_users
FROM segment_totals;

-- users.main
WITH users AS (
  /* a user's rows are distinct (os, region) pairs, and each carries their first */
  /* launch ever (or none: never launched) */
  SELECT
    user_id,
    COUNT(*) = 1 AS one_segment_pair,
    CASE WHEN MIN(first_launch_day) >= CAST('2026-11-28' AS DATE) THEN 1 ELSE 0 END AS is_new
  FROM user_combos
  GROUP BY
    user_id
), marked AS (
  SELECT
    user_combos.user_id,
    user_combos.os,
    user_combos.region,
    user_combos.launches,
    user_combos.duration_ms,
    users.one_segment_pair,
    users.is_new
  FROM user_combos
  JOIN users
    ON users.user_id = user_combos.user_id
), active AS (
  SELECT
    segment,
    launches,
    duration_ms AS duration,
    is_new
  FROM (
    SELECT
      segment,
      user_id,
      launches,
      duration_ms,
      is_new
    FROM (
      SELECT
        'all' AS segment,
        *
      FROM (
        SELECT
          *
        FROM marked
        WHERE
          one_segment_pair
      ) AS one_pair
      UNION ALL
      SELECT
        CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
        *
      FROM (
        SELECT
          *
        FROM marked
        WHERE
          one_segment_pair
      ) AS one_pair
      UNION ALL
      SELECT
        CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
        *
      FROM (
        SELECT
          *
        FROM marked
        WHERE
          one_segment_pair
      ) AS one_pair
    ) AS expanded
    UNION ALL
    SELECT
      segment,
      user_id,
      SUM(launches) AS launches,
      SUM(duration_ms) AS duration_ms,
      MIN(is_new) AS is_new
    FROM (
      SELECT
        'all' AS segment,
        *
      FROM (
        SELECT
          *
        FROM marked
        WHERE
          NOT one_segment_pair
      ) AS several
      UNION ALL
      SELECT
        CONCAT(CAST('os:' AS VARCHAR), CAST(os AS VARCHAR)) AS segment,
        *
      FROM (
        SELECT
          *
        FROM marked
        WHERE
          NOT one_segment_pair
      ) AS several
      UNION ALL
      SELECT
        CONCAT(CAST('region:' AS VARCHAR), CAST(region AS VARCHAR)) AS segment,
        *
      FROM (
        SELECT
          *
        FROM marked
        WHERE
          NOT one_segment_pair
      ) AS several
    ) AS expanded
    GROUP BY
      segment,
      user_id
  ) AS per_user
  WHERE
    launches > 0
)
SELECT
  segment,
  COUNT(*) AS active_users,
  SUM(is_new) AS new_users,
  SUM(CASE WHEN launches >= 2 THEN 1 ELSE 0 END) AS repeat_users,
  SUM(launches) AS visit_count,
  CASE
    WHEN COUNT(CAST(duration AS DOUBLE)) = 0
    THEN NULL
    ELSE CAST((
      ELEMENT_AT(
        ARRAY_SORT(
          ARRAY_AGG(CAST(duration AS DOUBLE)) FILTER(WHERE
            NOT CAST(duration AS DOUBLE) IS NULL)
        ),
        CAST(CAST(TRUNCATE(CAST(COUNT(CAST(duration AS DOUBLE)) + 1 AS DOUBLE) / 2) AS BIGINT) AS BIGINT)
      ) + ELEMENT_AT(
        ARRAY_SORT(
          ARRAY_AGG(CAST(duration AS DOUBLE)) FILTER(WHERE
            NOT CAST(duration AS DOUBLE) IS NULL)
        ),
        CAST((
          CAST(TRUNCATE(CAST(COUNT(CAST(duration AS DOUBLE)) AS DOUBLE) / 2) AS BIGINT)
        ) + 1 AS BIGINT)
      )
    ) AS DOUBLE) / 2.0
  END AS median_duration_per_user_ms,
  SUM(CASE WHEN duration > 0 THEN 1 ELSE 0 END) AS effectively_active_users
FROM active
GROUP BY
  segment;
