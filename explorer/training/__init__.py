"""Training: scenarios, synthetic dumps, exercises, results, the bundled samples."""
