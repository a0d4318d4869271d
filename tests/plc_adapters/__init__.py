"""Tests of plc_adapters (codec, read planning, backoff, Modbus adapter)."""
