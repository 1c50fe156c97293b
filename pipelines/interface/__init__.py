"""What a user calls: the pipeline (:mod:`.pipeline`), the scikit-learn estimator
(:mod:`.estimator`), the checks of a user's data (:mod:`.data_checks`) and which point to
measure next (:mod:`.suggest`)."""
