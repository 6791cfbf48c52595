"""`rsicbench <command>` modules: each parses its arguments, calls the layers below and
prints; `main(argv) -> int`. rsicbench/cli.py maps command names to these modules.

May import: everything in reproduce/ (commands are the top layer; nothing imports them
except rsicbench.cli and other commands that chain them, such as folder).
"""
