"""Stages after scoring: the LLM re-ranking stage (``rerank=llm``) and its backends' API."""

from recframe.rerank.backend import MODES, Generation, LLMBackend, Scored, ScoreResult
from recframe.rerank.parse import ParsedRanking, parse_ranking
from recframe.rerank.stage import RERANK_FILE, protocol_entry, run_stage

__all__ = ["MODES", "RERANK_FILE", "Generation", "LLMBackend", "ParsedRanking", "ScoreResult",
           "Scored", "parse_ranking", "protocol_entry", "run_stage"]
