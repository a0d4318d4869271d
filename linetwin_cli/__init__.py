"""The ``linetwin`` command line: one module per command group, on top of every library package (which import
no CLI module). Entry point :func:`linetwin_cli.main.main`."""
