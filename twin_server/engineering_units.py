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
    code: str
    symbol: str
    name: str

    @property
    def unit_id(self) -> int:
        """OPC UA UnitId: the code's ASCII bytes packed big-endian (OPC 10000-8 §5.6.3)."""
        value = 0
        for ch in self.code.upper():
            value = (value << 8) | ord(ch)
        return value


_UNITS = [
    EngineeringUnit("CEL", "°C", "degree Celsius"),
    EngineeringUnit("KEL", "K", "kelvin"),
    EngineeringUnit("MTR", "m", "metre"),
    EngineeringUnit("MMT", "mm", "millimetre"),
    EngineeringUnit("4H", "µm", "micrometre (micron)"),
    EngineeringUnit("MTQ", "m³", "cubic metre"),
    EngineeringUnit("LTR", "l", "litre"),
    EngineeringUnit("MLT", "ml", "millilitre"),
    EngineeringUnit("MQH", "m³/h", "cubic metre per hour"),
    EngineeringUnit("MQS", "m³/s", "cubic metre per second"),
    EngineeringUnit("41", "ml/min", "millilitre per minute"),
    EngineeringUnit("L2", "l/min", "litre per minute"),
    EngineeringUnit("KMQ", "kg/m³", "kilogram per cubic metre"),
    EngineeringUnit("GL", "g/l", "gram per litre"),
    EngineeringUnit("M1", "mg/l", "milligram per litre"),
    EngineeringUnit("KGM", "kg", "kilogram"),
    EngineeringUnit("KGH", "kg/h", "kilogram per hour"),
    EngineeringUnit("RPM", "r/min", "revolutions per minute"),
    EngineeringUnit("KWT", "kW", "kilowatt"),
    EngineeringUnit("WTT", "W", "watt"),
    EngineeringUnit("BAR", "bar", "bar [unit of pressure]"),
    EngineeringUnit("MBR", "mbar", "millibar"),
    EngineeringUnit("PAL", "Pa", "pascal"),
    EngineeringUnit("KPA", "kPa", "kilopascal"),
    EngineeringUnit("H61", "mS/cm", "millisiemens per centimetre"),
    EngineeringUnit("P1", "%", "percent"),
    EngineeringUnit("C62", "1", "one (dimensionless)"),
    EngineeringUnit("SEC", "s", "second [unit of time]"),
    EngineeringUnit("MIN", "min", "minute [unit of time]"),
    EngineeringUnit("HUR", "h", "hour"),
    EngineeringUnit("C38", "mol/l", "mole per litre"),
    EngineeringUnit("HTZ", "Hz", "hertz"),
    EngineeringUnit("AMP", "A", "ampere"),
    EngineeringUnit("VLT", "V", "volt"),
]

UNITS_BY_CODE: dict[str, EngineeringUnit] = {u.code: u for u in _UNITS}


def lookup_unit(code: str) -> EngineeringUnit | None:
    """The unit for a UNECE common code, or ``None`` if linetwin does not know it."""
    return UNITS_BY_CODE.get(code)
