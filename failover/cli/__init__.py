"""The `failover` command: parse, wire, drive. Each command lives in a module of its own."""

import gc
import os

# Loading the CLI is most of a cron `check`'s start-up, and two costs in it buy nothing:
# - the collector walking the few hundred thousand objects being loaded (modules, classes,
#   botocore's and pydantic's tables) over and over, though they live as long as the
#   process: off while they load, then frozen out of its sight for good (~15 ms);
# - pydantic looking through every installed package's metadata for plugins when it builds
#   the config's models: failover's config has no use for them (~6 ms). Its documented
#   switch is set while the models are built, unless the operator set it, then put back,
#   so hooks and command probes inherit the environment as it was.
_PLUGINS = "PYDANTIC_DISABLE_PLUGINS"
_plugins_before = os.environ.get(_PLUGINS)
gc.disable()
os.environ[_PLUGINS] = _plugins_before if _plugins_before is not None else "__all__"
try:
    from failover.cli import hold, move, passes, show, validate  # noqa: F401  (registers the commands)
    from failover.cli.app import cli, main
finally:
    if _plugins_before is None:
        del os.environ[_PLUGINS]
    gc.freeze()
    gc.enable()

__all__ = ["cli", "main"]
