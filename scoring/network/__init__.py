"""Network statistics of the follow graph: clustering, assortativity, reciprocity,
PageRank, follow multiplicity and the 13 three-node motifs with z-scores."""
