"""Intake: where a captive's facts enter the system (GC III Arts. 17, 70, 122)."""
