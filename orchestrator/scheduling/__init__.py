"""Scheduled batch runs: schedule files, cron semantics, slots, leases and history kept in the artifact store, and
the tick that any runner (a systemd timer, a supervised loop, a person) calls to start what is due."""
