"""Other spellings of the same files: header styles and value spellings the tap must read alike.

A dialect rewrites a file the simulator would serve, label by label and cell by cell,
into another spelling of the same data: snake_case or camelCase headers, ISO 8601 or
Unix timestamps, durations in seconds, true/false booleans. A wall-clock time is read as
the tap reads it (the first occurrence of a repeated hour), so every dialect of a file
holds exactly the values of the default one.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from tap_aircall_analytics.config.catalogue import FALSE_TEXT, PERCENT_SUFFIX, TRUE_TEXT, Column, Kind, property_name

#: Dialect option -> (the aspect of the file it changes, what the option is).
OPTIONS: dict[str, tuple[str, str]] = {
    "snake": ("headers", "snake_case headers: call_id"),
    "camel": ("headers", "camelCase headers: callId"),
    "upper": ("headers", "upper-case headers with dashes: CALL-ID"),
    "iso": ("timestamps", "wall clock with a T: 2026-11-27T18:47:56"),
    "iso-ms": ("timestamps", "wall clock with milliseconds: 2026-11-27T18:47:56.000"),
    "iso-z": ("timestamps", "UTC with a Z: 2026-11-27T17:47:56Z"),
    "iso-ms-z": ("timestamps", "UTC with milliseconds and a Z: 2026-11-27T17:47:56.000Z"),
    "offset": ("timestamps", "wall clock with its UTC offset: 2026-11-27T18:47:56+01:00"),
    "unix": ("timestamps", "Unix seconds: 1795801676"),
    "unix-ms": ("timestamps", "Unix milliseconds: 1795801676000"),
    "unix-us": ("timestamps", "Unix microseconds: 1795801676000000"),
    "day-first": ("timestamps", "day first, to the minute: 27/11/2026 18:47 (a format must be declared)"),
    "seconds": ("durations", "whole seconds: 754"),
    "decimal-seconds": ("durations", "seconds with a decimal: 754.0"),
    "true-false": ("booleans", "true / false"),
    "one-zero": ("booleans", "1 / 0"),
    "midnight": ("dates", "a date with a midnight time: 2026-11-27 00:00:00"),
    "point-zero": ("integers", "integers with a decimal: 12.0"),
    "bare-percent": ("percents", "percentages without %: 12.5"),
}


class DialectError(ValueError):
    """A dialect option that does not exist, or two options for one aspect."""


@dataclass(frozen=True)
class Dialect:
    """How a file is spelled: one option at most per aspect (headers, timestamps, ...)."""

    options: tuple[str, ...] = ()
    timezone: str = "UTC"

    @classmethod
    def parse(cls, text: str | None, timezone: str = "UTC") -> Dialect:
        """Read `snake,iso-ms-z,seconds`; DialectError naming the options on a mistake."""
        options = tuple(option.strip() for option in (text or "").split(",") if option.strip())
        unknown = [option for option in options if option not in OPTIONS]
        if unknown:
            raise DialectError(f"dialect option '{unknown[0]}' is not one of {', '.join(OPTIONS)}")
        aspects = [OPTIONS[option][0] for option in options]
        twice = sorted({aspect for aspect in aspects if aspects.count(aspect) > 1})
        if twice:
            raise DialectError(f"dialect: give one option for {twice[0]}")
        return cls(options, timezone)

    def __bool__(self) -> bool:
        return bool(self.options)

    def _option(self, aspect: str) -> str:
        return next((option for option in self.options if OPTIONS[option][0] == aspect), "")

    def label(self, label: str) -> str:
        """A header label in this dialect."""
        style = self._option("headers")
        if style == "snake":
            return property_name(label)
        if style == "camel":
            first, *rest = property_name(label).split("_")
            return first + "".join(word.capitalize() for word in rest)
        if style == "upper":
            return re.sub(r"[^0-9A-Z]+", "-", label.upper()).strip("-")
        return label

    def cell(self, column: Column) -> Callable[[str], str]:
        """The function that respells a (non-empty) cell of `column` written in the default spelling."""
        kind = column.kind
        option = {
            Kind.TIMESTAMP: self._option("timestamps"),
            Kind.DURATION: self._option("durations"),
            Kind.BOOLEAN: self._option("booleans"),
            Kind.DATE: self._option("dates"),
            Kind.INTEGER: self._option("integers"),
            Kind.PERCENT: self._option("percents"),
        }.get(kind, "")
        if not option:
            return str
        if kind is Kind.TIMESTAMP:
            return _timestamps(option, self.timezone)
        if kind is Kind.DURATION:
            return lambda text: _seconds(text) + (".0" if option == "decimal-seconds" else "")
        if kind is Kind.BOOLEAN:
            spelled = (
                {TRUE_TEXT: "true", FALSE_TEXT: "false"}
                if option == "true-false"
                else {TRUE_TEXT: "1", FALSE_TEXT: "0"}
            )
            return lambda text: spelled.get(text, text)
        if kind is Kind.DATE:
            return lambda text: text + " 00:00:00"
        if kind is Kind.INTEGER:
            return lambda text: text + ".0" if text.isdigit() else text
        return lambda text: text.removesuffix(PERCENT_SUFFIX)


@lru_cache(maxsize=1 << 16)
def _seconds(text: str) -> str:
    hours, minutes, seconds = text.split(":")
    return str(int(hours) * 3600 + int(minutes) * 60 + int(seconds))


def _timestamps(option: str, timezone: str) -> Callable[[str], str]:
    zone = zoneinfo.ZoneInfo(timezone)

    def respell(text: str) -> str:
        local = dt.datetime.fromisoformat(text).replace(tzinfo=zone, fold=0)
        utc = local.astimezone(dt.timezone.utc)
        if option == "iso":
            return text.replace(" ", "T")
        if option == "iso-ms":
            return text.replace(" ", "T") + ".000"
        if option == "iso-z":
            return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        if option == "iso-ms-z":
            return utc.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if option == "offset":
            return local.isoformat()
        if option == "day-first":
            return local.strftime("%d/%m/%Y %H:%M")
        seconds = int(utc.timestamp())
        if option == "unix-ms":
            return f"{seconds}000"
        if option == "unix-us":
            return f"{seconds}000000"
        return str(seconds)

    return respell
