"""Schedule runners: small always-on VMs that tick the schedules kept in a store, with a credential of their own."""
