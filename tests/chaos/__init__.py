"""The chaos suite: faults injected on purpose, each case recording its row of docs/chaos.md."""
