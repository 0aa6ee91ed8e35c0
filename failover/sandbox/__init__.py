"""An AWS sandbox for tests, the demo and benchmarks: moto made as strict as EC2 is.

Modules: `strict` (StrictLayer, Call), `server` (SandboxServer), `world` (build_world).
Importing this package imports no moto; its modules do.
"""
