"""One-off measurements kept runnable: each answers one question about a design choice (docs/ has the answers).

python -m training.studies.attention_study  # decoder attention over the encoder's states (docs/generator.md)
python -m training.studies.fusion_study     # prior re-ranking and ensembles of exported models (docs/classifiers.md)
python -m training.studies.guidance_study   # classifier-free guidance scale (docs/generator.md)
python -m training.studies.prior_study      # latent prior vs N(0, I) vs posterior means (docs/generator.md)
"""
