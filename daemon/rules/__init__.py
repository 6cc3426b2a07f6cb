"""Rule model, parsing, matcher and backtest (pure)."""
