"""OPC UA alarms & conditions of the twin (issue #10 item 4; so far: communication loss per unit)."""
