"""The historian: every mirrored sample, setpoint written, estimate and control event, kept and served.

Modules (one job each): :mod:`.settings` (config), :mod:`.timebase` (µs timestamps), :mod:`.recorder`
(hot-path calls, bounded queue, batching thread), :mod:`.sqlite_store` (embedded default),
:mod:`.influx_store` + :mod:`.forward_buffer` (InfluxDB with store and forward), :mod:`.aggregates`
(OPC UA Part 13 processed values), :mod:`.history_read` (the OPC UA HistoryRead service),
:mod:`.service` (wiring into the twin server), :mod:`.export` (``linetwin history export``).

This package's ``__init__`` stays import-light: the config loader imports :mod:`.settings`.
"""
