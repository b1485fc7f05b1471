"""What the store holds, for people: the report and the dashboard."""
