"""The rules of 吹哨报到, as pure functions and types: no I/O, no clock, no Temporal. Workflows
(through the sandbox), activities, the API and the tests import them from here."""
