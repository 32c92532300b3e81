"""Federated algorithms. They see a federation Context, never a transport."""
