"""Pruning at initialization: saliency scores, global masks, iterative rounds, lottery tickets.

`scores` computes per-weight saliency (magnitude, random, SNIP, GraSP, SynFlow); `masks`
builds global masks and holds them through training; `pruner` prunes to a compression
ratio, optionally iteratively; `lottery` is iterative magnitude pruning with rewinding.
It does not remove channels (see `tinyprune.prune.structured`).
"""
