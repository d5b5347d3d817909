"""Use cases: what a command does, between the CLI (which parses and renders) and the domains (which know how).

Each module holds one family of use cases (run a pipeline, predict a batch, serve, deploy, manage clusters); a
command parses its options, calls one function here and renders what it returns.
"""
