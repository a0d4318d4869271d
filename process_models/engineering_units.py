"""UNECE Recommendation 20 unit codes known to linetwin, and their OPC UA ``EUInformation``.

OPC 10000-8 §5.6.3 maps a UNECE common code to ``EUInformation.UnitId`` by packing the code's
ASCII characters into an Int32 (first character in the most significant used byte); the namespace
URI is ``http://www.opcfoundation.org/UA/units/un/cefact``. Display names and descriptions below
are the UNECE Rec. 20 (rev. 17) symbols and names.
"""

from __future__ import annotations

from dataclasses import dataclass

UNECE_NAMESPACE_URI = "http://www.opcfoundation.org/UA/units/un/cefact"


@dataclass(frozen=True, slots=True)
class EngineeringUnit:
    """A UNECE unit and its relation to SI: ``value_si = value * si_factor + si_offset``."""

    code: str
    symbol: str
    name: str
    si_unit: str = ""
    si_factor: float = 1.0
    si_offset: float = 0.0

    def to_si(self, value: float) -> float:
        return value * self.si_factor + self.si_offset

    def from_si(self, value_si: float) -> float:
        return (value_si - self.si_offset) / self.si_factor

    @property
    def unit_id(self) -> int:
        """OPC UA UnitId: the code's ASCII bytes packed big-endian (OPC 10000-8 §5.6.3)."""
        value = 0
        for ch in self.code.upper():
            value = (value << 8) | ord(ch)
        return value


_UNITS = [
    EngineeringUnit("CEL", "°C", "degree Celsius", "K", 1.0, 273.15),
    EngineeringUnit("KEL", "K", "kelvin", "K"),
    EngineeringUnit("MTR", "m", "metre", "m"),
    EngineeringUnit("MMT", "mm", "millimetre", "m", 1e-3),
    EngineeringUnit("MTS", "m/s", "metre per second", "m/s"),
    EngineeringUnit("4H", "µm", "micrometre (micron)", "m", 1e-6),
    EngineeringUnit("MTQ", "m³", "cubic metre", "m3"),
    EngineeringUnit("LTR", "l", "litre", "m3", 1e-3),
    EngineeringUnit("MLT", "ml", "millilitre", "m3", 1e-6),
    EngineeringUnit("MQH", "m³/h", "cubic metre per hour", "m3/s", 1.0 / 3600.0),
    EngineeringUnit("MQS", "m³/s", "cubic metre per second", "m3/s"),
    EngineeringUnit("41", "ml/min", "millilitre per minute", "m3/s", 1e-6 / 60.0),
    EngineeringUnit("L2", "l/min", "litre per minute", "m3/s", 1e-3 / 60.0),
    EngineeringUnit("KMQ", "kg/m³", "kilogram per cubic metre", "kg/m3"),
    EngineeringUnit("GL", "g/l", "gram per litre", "kg/m3"),
    EngineeringUnit("M1", "mg/l", "milligram per litre", "kg/m3", 1e-3),
    EngineeringUnit("KGM", "kg", "kilogram", "kg"),
    EngineeringUnit("KGH", "kg/h", "kilogram per hour", "kg/s", 1.0 / 3600.0),
    EngineeringUnit("RPM", "r/min", "revolutions per minute", "1/s", 1.0 / 60.0),
    EngineeringUnit("KWT", "kW", "kilowatt", "W", 1e3),
    EngineeringUnit("WTT", "W", "watt", "W"),
    EngineeringUnit("BAR", "bar", "bar [unit of pressure]", "Pa", 1e5),
    EngineeringUnit("MBR", "mbar", "millibar", "Pa", 1e2),
    EngineeringUnit("PAL", "Pa", "pascal", "Pa"),
    EngineeringUnit("KPA", "kPa", "kilopascal", "Pa", 1e3),
    EngineeringUnit("H61", "mS/cm", "millisiemens per centimetre", "S/m", 0.1),
    EngineeringUnit("P1", "%", "percent", "1", 0.01),
    EngineeringUnit("C62", "1", "one (dimensionless)", "1"),
    EngineeringUnit("SEC", "s", "second [unit of time]", "s"),
    EngineeringUnit("C26", "ms", "millisecond", "s", 1e-3),
    EngineeringUnit("MIN", "min", "minute [unit of time]", "s", 60.0),
    EngineeringUnit("HUR", "h", "hour", "s", 3600.0),
    EngineeringUnit("C38", "mol/l", "mole per litre", "mol/m3", 1e3),
    EngineeringUnit("M33", "mmol/l", "millimole per litre", "mol/m3"),
    EngineeringUnit("HTZ", "Hz", "hertz", "1/s"),
    EngineeringUnit("AMP", "A", "ampere", "A"),
    EngineeringUnit("VLT", "V", "volt", "V"),
]

UNITS_BY_CODE: dict[str, EngineeringUnit] = {u.code: u for u in _UNITS}


def lookup_unit(code: str) -> EngineeringUnit | None:
    """The unit for a UNECE common code, or ``None`` if linetwin does not know it."""
    return UNITS_BY_CODE.get(code)


_SI_TEXT_CODES = {"K": "KEL", "m": "MTR", "m/s": "MTS", "m3": "MTQ", "kg": "KGM", "kg/m3": "KMQ", "1": "C62",
                  "s": "SEC", "W": "WTT", "Pa": "PAL"}


def code_for_si_text(unit: str) -> str | None:
    """The UNECE code of a model's declared SI unit text (``"m/s"`` → ``MTS``), or ``None`` where Rec. 20 has no
    code linetwin knows for it (``"kg/kg"``, ``"1/(m3 s)"``, moments per kg): then publish the text itself."""
    return _SI_TEXT_CODES.get(unit.strip())
