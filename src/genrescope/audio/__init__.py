"""Decoding: any common file and sample rate to mono float32 blocks, and the errors
for bad input (libsndfile first, FFmpeg through PyAV as the fallback).
"""
