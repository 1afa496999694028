"""Mini Drama Analytics: serverless analytics and daily reports for mini drama apps.

Modules, one job each:

- ``lake``: lake layout (pure) and storage (local directory or S3)
- ``config``: registered apps, API key hashes, currency rates
- ``schema``: the columns of the events Parquet files
- ``validation``: the event rules of the contract, one implementation for API, CLI and writer
- ``ingestion``, ``writer``, ``api``: getting events in, durably
- ``router``: the HTTP API's routes, one Powertools router for the Lambda and the local server
- ``gateway``, ``server``: ``minidrama serve``, API Gateway's part played locally over h11
- ``metrics``: the daily metrics document (SQL run by DuckDB)
- ``report``: HTML, PDF and email of the daily report
- ``demo``: a traffic simulator for the demo app
- ``cli``: the ``minidrama`` command
"""

__version__ = "0.1.0"
