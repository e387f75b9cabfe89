"""The one feature path: STFT, mel, log-mel, MFCC, spectral statistics, the GTZAN
table, model windows and the content-keyed feature cache.
"""
