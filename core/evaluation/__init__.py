"""How well domains do: confusion reports, the decathlon score, results, the experiment."""
