"""Running the model: what is out of date, building in parts, checking, publishing and recording a run."""
