"""An example product service built on Helios (not part of Helios): candidates and job offers."""
