"""The search: a best-first loop over edits (:mod:`.planner`), its stages (:mod:`.stages`),
the start providers and sub-goals, and the finisher that chooses and reports (:mod:`.finish`)."""
