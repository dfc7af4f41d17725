"""Virality prediction: CrowdCast, SANSNET and the papers' baselines in one harness.

Pure numeric cores (:mod:`.cascades`, :mod:`.labels`, :mod:`.sansnet`,
:mod:`.crowdcast`, :mod:`.baselines`, :mod:`.evaluate`) take arrays and return arrays
or dataclasses; :mod:`.store` is the only module that speaks SQL.
"""
