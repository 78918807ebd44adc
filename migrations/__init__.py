"""The schema: numbered SQL files, each with an up and a down part, shipped as package data."""
