"""Load: the user's inputs, checked before anything runs.

`model` opens a trained Keras model safely (.h5, .keras, SavedModel; no code from the file
runs without `unsafe=True`); `data` reads the built-in digits or a user's .npz into a
`Dataset`. This package loads and validates; it does not prune or train.
"""
