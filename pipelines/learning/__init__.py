"""The learning loop: traces of the planner's own runs (:mod:`.traces`), the Lightning training
CLI (:mod:`.train`), on-policy rounds (:mod:`.improve`, :mod:`.on_policy`) and the held-out
evaluation (:mod:`.evaluate`)."""
