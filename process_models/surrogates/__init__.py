"""Neural surrogates (torch) trained from the declared physics models; see docs/surrogates.md."""
