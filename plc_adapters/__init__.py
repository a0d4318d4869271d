"""Talking to equipment: Modbus TCP / OPC UA adapters, tag maps, codecs, quality codes."""
