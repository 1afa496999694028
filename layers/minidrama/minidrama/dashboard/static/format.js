// How numbers read on the dashboard: the report's formatters (minidrama/report/format.py), to
// the character. Python rounds the exact binary value half to even; toFixed gives that exact
// value's digits, and fixed() rounds them the way Python does.
"use strict";

(function (global) {
  const MISSING = "\u2014";
  const CURRENCY_SYMBOLS = { USD: "$", EUR: "\u20ac", GBP: "\u00a3", JPY: "\u00a5", KRW: "\u20a9", INR: "\u20b9" };
  const ZERO_DECIMAL_CURRENCIES = new Set(["JPY", "KRW", "VND", "IDR", "CLP", "ISK", "HUF", "TWD"]);

  function isMissing(value) {
    return value === null || value === undefined || typeof value !== "number" || !Number.isFinite(value);
  }

  // The digits of |value| rounded half to even at `places` decimals, as Python's format() does.
  function fixed(value, places) {
    const exact = Math.abs(value).toFixed(Math.min(100, places + 60));
    const [whole, fraction] = exact.split(".");
    const kept = whole + (fraction || "").slice(0, places);
    const rest = (fraction || "").slice(places);
    let roundUp = false;
    if (rest.length && rest[0] > "5") roundUp = true;
    else if (rest.length && rest[0] === "5") {
      roundUp = /[1-9]/.test(rest.slice(1)) || Number(kept[kept.length - 1]) % 2 === 1;
    }
    let digits = kept;
    if (roundUp) {
      const chars = digits.split("");
      let index = chars.length - 1;
      while (index >= 0) {
        if (chars[index] === "9") {
          chars[index] = "0";
          index -= 1;
        } else {
          chars[index] = String(Number(chars[index]) + 1);
          break;
        }
      }
      digits = (index < 0 ? "1" : "") + chars.join("");
    }
    const integer = places ? digits.slice(0, digits.length - places) || "0" : digits;
    const decimals = places ? digits.slice(digits.length - places) : "";
    return { integer: integer.replace(/^0+(?=\d)/, ""), decimals };
  }

  function grouped(integer) {
    return integer.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  // Python's f"{value:,.{places}f}" (a negative zero keeps its sign, as Python's does).
  function number(value, places) {
    const { integer, decimals } = fixed(value, places);
    const sign = value < 0 || Object.is(value, -0) ? "-" : "";
    return sign + grouped(integer) + (places ? "." + decimals : "");
  }

  // Python's f"{round(value):,}": an integer, so never "-0".
  function count(value) {
    if (isMissing(value)) return MISSING;
    const text = number(value, 0);
    return text === "-0" ? "0" : text;
  }

  function decimal(value, places = 2) {
    return isMissing(value) ? MISSING : number(value, places);
  }

  function rate(value, places = 1) {
    return isMissing(value) ? MISSING : number(value * 100, places) + "%";
  }

  function money(value, currency) {
    if (isMissing(value)) return MISSING;
    const places = ZERO_DECIMAL_CURRENCIES.has(currency) ? 0 : 2;
    const sign = value < 0 ? "-" : "";
    const amount = number(Math.abs(value), places);
    const symbol = CURRENCY_SYMBOLS[currency];
    return symbol ? `${sign}${symbol}${amount}` : `${sign}${amount} ${currency}`;
  }

  function duration(milliseconds) {
    if (isMissing(milliseconds)) return MISSING;
    const seconds = milliseconds / 1000;
    if (seconds < 10) {
      const text = number(seconds, 1) + "s";
      return text === "0.0s" ? "0s" : text;
    }
    const whole = Number(fixed(seconds, 0).integer);
    if (whole < 60) return `${whole}s`;
    let minutes = Math.floor(whole / 60);
    const secs = whole % 60;
    if (minutes < 60) return `${minutes}m ${String(secs).padStart(2, "0")}s`;
    const hours = Math.floor(minutes / 60);
    minutes %= 60;
    return `${hours}h ${String(minutes).padStart(2, "0")}m`;
  }

  function launch(milliseconds) {
    if (isMissing(milliseconds)) return MISSING;
    if (milliseconds < 1000) return `${fixed(milliseconds, 0).integer} ms`;
    return `${number(milliseconds / 1000, 2)} s`;
  }

  // By kind, as format_value: count, decimal, rate, money, duration, launch; "text" as is.
  function value(raw, kind, currency = "USD") {
    switch (kind) {
      case "count": return count(raw);
      case "decimal": return decimal(raw);
      case "rate": return rate(raw);
      case "money": return money(raw, currency);
      case "duration": return duration(raw);
      case "launch": return launch(raw);
      case "text": return raw === null || raw === undefined ? MISSING : String(raw);
      default: throw new Error(`unknown value kind ${kind}`);
    }
  }

  global.MinidramaFormat = { MISSING, count, decimal, rate, money, duration, launch, value };
})(window);
