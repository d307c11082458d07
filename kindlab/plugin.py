"""kindlab's pytest plugin, under the name it is registered by.

The ``pytest11`` entry point (``kindlab = "kindlab.plugin"``) and the qemu
guest's ``-p kindlab.plugin`` load this module; it loads the plugin itself,
:mod:`kindlab.pytest_plugin`, one module per concern. Installing kindlab is
enough: its fixtures and options are there in every pytest run.
"""

pytest_plugins = ["kindlab.pytest_plugin"]
