"""The only code that calls ansible-runner: inventories from stack outputs, playbook runs, events, failures."""
