"""OPC UA Alarms & Conditions for the line: limit alarms per tag, communication loss per unit, control-loop
alarms (see docs/alarms.md)."""
