"""The ``dataops`` command line: parse options, call a use case, render the result. No logic here."""
