"""Looking inside audio and models: file summaries (`genrescope info`), and room for
plots, filters and saliency.
"""
