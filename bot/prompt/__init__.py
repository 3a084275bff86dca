"""The prompt: fitting history to the token budget (fit), reading it from the database
(recall), the rolling summary of what left the window (summary) and the learned ratio of our
token counts to the server's (calibration)."""
