"""Resource quantities as the API server stores them: parse `500m`, `1.5Gi`, `0.5`, `1e3`, print canonically.

The server decodes every quantity into apimachinery's `resource.Quantity`, rounds it up to the
milli-unit while defaulting (`SetDefaults_ResourceList`), and encodes it in canonical form: a
decimal quantity as the shortest integer mantissa with an exponent that is a multiple of 3 and its
SI suffix (`0.5` -> `500m`, `1000m` -> `1`, `1000` -> `1k`); a binary one (`Ki`...`Ei`) as an
integer times the largest power of 1024 that divides it (`1024Mi` -> `1Gi`, `1.5Gi` -> `1536Mi`),
falling back to decimal below 1024 or when it is not a whole number; exponent notation keeps its
`eN` form. The canonical form lands in the stored template and so in the revision hash. Standard
library only.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Final

_DECIMAL: Final = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIX: Final = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX: Final = {v // 10: k for k, v in _BINARY.items()}
_NUMBER: Final = re.compile(r"^([+-]?)(\d*)(?:\.(\d*))?(.*)$")
_EXPONENT: Final = re.compile(r"^[eE]([+-]?\d+)$")


class QuantityError(ValueError):
    """Not a quantity; the message is the server's ("quantities must match the regular expression ...")."""


QUANTITY_MESSAGE: Final = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def parse_quantity(text: object) -> tuple[Fraction, str]:
    """(value, format) with format "DecimalSI", "BinarySI" or "DecimalExponent"; QuantityError if malformed."""
    raw = str(text).strip() if isinstance(text, str) else _number_text(text)
    match = _NUMBER.match(raw)
    if not raw or match is None or not (match[2] or match[3]):
        raise QuantityError(QUANTITY_MESSAGE)
    sign, whole, frac, suffix = match[1], match[2] or "0", match[3] or "", match[4]
    value = Fraction(int(whole + frac), 10 ** len(frac))
    if suffix in _BINARY:
        value, fmt = value * 2 ** _BINARY[suffix], "BinarySI"
    elif suffix in _DECIMAL:
        value, fmt = value * Fraction(10) ** _DECIMAL[suffix], "DecimalSI"
    elif exponent := _EXPONENT.match(suffix):
        value, fmt = value * Fraction(10) ** int(exponent[1]), "DecimalExponent"
    else:
        raise QuantityError(QUANTITY_MESSAGE)
    value = _round_up(value, 9)  # the parser keeps at most nano precision, rounding away from zero
    if fmt == "BinarySI" and 0 < value < 1:
        fmt = "DecimalSI"
    return (-value if sign == "-" else value), fmt


def _number_text(value: object) -> str:
    """A JSON number as Go would see its text (YAML `cpu: 0.5` arrives as a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _round_up(value: Fraction, digits: int) -> Fraction:
    """Round away from zero to `digits` decimal places (inf.RoundUp)."""
    scaled = value * 10**digits
    magnitude = -(-abs(scaled.numerator) // scaled.denominator)
    return Fraction(magnitude if value >= 0 else -magnitude, 10**digits)


def _decimal_parts(value: Fraction) -> tuple[int, int]:
    """(mantissa, exponent) with no trailing zeros, then the exponent lowered to a multiple of 3."""
    exponent = 0
    while value.denominator != 1:
        value *= 10
        exponent -= 1
    mantissa = value.numerator
    while mantissa and mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    while exponent % 3:
        mantissa *= 10
        exponent -= 1
    return mantissa, exponent


def format_quantity(value: Fraction, fmt: str) -> str:
    """The canonical text of a quantity (apimachinery's CanonicalizeBytes)."""
    if value == 0:
        return "0"
    if fmt == "BinarySI" and (-1024 < value < 1024 or value.denominator != 1):
        fmt = "DecimalSI"
    if fmt == "BinarySI":
        mantissa, power = int(value), 0
        while mantissa % 1024 == 0 and power < max(_BINARY_SUFFIX):
            mantissa //= 1024
            power += 1
        return f"{mantissa}{_BINARY_SUFFIX.get(power, '')}"
    mantissa, exponent = _decimal_parts(value)
    if fmt == "DecimalExponent":
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    return f"{mantissa}{_DECIMAL_SUFFIX.get(exponent, '')}"


def _kept_text(raw: str) -> str | None:
    """The input text itself when the parser's fast path keeps it (ParseQuantity caches the string of
    a quantity already in canonical form: `1E3` stays `1E3`, `+1` stays `+1`), else None."""
    match = _NUMBER.match(raw)
    if match is None:
        return None
    num, denom, suffix = (match[2] or "").lstrip("0") or "0", match[3] or "", match[4]
    if suffix in _BINARY:
        exponent = _BINARY[suffix]
        if denom or 15 - len(num) - int(exponent * 3 / 10) - 1 < 0:
            return None
        value = int(num)
        fits = value << exponent < 2**63
        return raw if fits and exponent % 10 == 0 and value & 0x07 else None
    exp = _EXPONENT.match(suffix)
    decimal = _DECIMAL[suffix] if suffix in _DECIMAL else int(exp[1]) if exp else None
    if decimal is None:
        return None
    exponent = decimal
    if 18 - (len(num) + len(denom)) < 0:
        return None
    scale, shifted = exponent - len(denom), num + denom
    if scale < -9 or int(shifted) >= 2**63:
        return None
    if scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0" and scale >= -3:
        return raw  # NB: rounding to milli-units (scale -3) only clears the cached text below that
    return None


def canonical_quantity(text: object, *, milli: bool = True) -> str:
    """`text` as the server stores it; rounded up to milli-units first, as defaulting does."""
    value, fmt = parse_quantity(text)
    raw = text.strip() if isinstance(text, str) else _number_text(text)
    kept = _kept_text(raw) if raw != "0" else "0"
    if kept is not None and (milli or kept == raw):
        return kept
    return format_quantity(_round_up(value, 3) if milli else value, fmt)


def quantity_value(text: object) -> Fraction:
    """The numeric value of a quantity (for comparisons such as requests <= limits)."""
    return parse_quantity(text)[0]
