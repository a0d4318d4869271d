"""Metrics and health of a running twin: ``[metrics]`` settings, a Prometheus collector that reads the twin's
existing counters at scrape time, the health verdict, and the loopback HTTP endpoint serving both
(``/metrics``, ``/health``). See docs/plant/monitoring.md."""
