"""Horizontal neural networks (FedAvg); arrives with the homo_nn issue."""
