"""cimstats: from labelled survey files to tested network mechanisms and joint displays.

The flow is read -> harmonise -> measure -> model -> test mechanisms ->
integrate -> render. Public verbs are importable from the top level; each is
loaded on first use so that ``import cimstats`` stays fast.

Examples
--------
>>> import cimstats
>>> cimstats.__version__
'0.1.0'
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (loaded lazily on first access)
_EXPORTS: dict[str, str] = {
    # io
    "Survey": "cimstats.io",
    "VariableMeta": "cimstats.io",
    "read_survey": "cimstats.io",
    "write_survey": "cimstats.io",
    "iter_survey": "cimstats.io",
    # harmonise
    "harmonise": "cimstats.dictionary",
    "read_dictionary": "cimstats.dictionary",
    "HarmonisationReport": "cimstats.dictionary",
    "HarmonisationResult": "cimstats.dictionary",
    "check_dictionary": "cimstats.dictionary",
    "deprivation": "cimstats.dictionary",
    # measures
    "score_scale": "cimstats.measures",
    "scales": "cimstats.measures",
    "networks": "cimstats.measures",
    "reliability": "cimstats.measures",
    # models
    "lmm": "cimstats.models",
    "anova": "cimstats.models",
    "glmm": "cimstats.models.glmm.fit",
    "gee": "cimstats.models.glmm.gee",
    "sem": "cimstats.models.sem.fit",
    "invariance": "cimstats.models.sem.invariance",
    "longitudinal_invariance": "cimstats.models.sem.longitudinal",
    "mediation": "cimstats.models.mediation.fit",
    "power": "cimstats.models.power",
    "parametric_bootstrap": "cimstats.models.bootstrap",
    "bootstrap_lrt": "cimstats.models.bootstrap",
    "SurveyDesign": "cimstats.models.survey.design",
    "describe": "cimstats.models.survey.describe",
    "glm": "cimstats.models.survey.glm",
    "impute": "cimstats.models.impute",
    "Imputations": "cimstats.models.impute",
    # mechanisms
    "test_mechanisms": "cimstats.mechanisms.evaluate",
    # integrate
    "read_qdpx": "cimstats.integrate",
    "read_theme_codebook": "cimstats.integrate",
    "read_excerpts": "cimstats.integrate",
    "joint_display": "cimstats.integrate",
    # pipeline
    "run": "cimstats.pipeline",
    "load_result": "cimstats.pipeline.results",
    # render
    "TableSpec": "cimstats.render",
    "NumberFormat": "cimstats.render",
    "model_table": "cimstats.render",
    "Figure": "cimstats.render.figures",
    "forest_plot": "cimstats.render.figures",
    "caterpillar_plot": "cimstats.render.figures",
    "path_diagram": "cimstats.render.figures",
    "invariance_plot": "cimstats.render.figures",
    # subpackages
    "datasets": "cimstats.datasets",
    "errors": "cimstats.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


#: names of the previous release, kept for one release
_RENAMED = {"read_codebook": "read_theme_codebook"}


def __getattr__(name: str):
    if name in _RENAMED:
        import warnings

        warnings.warn(f"cimstats.{name} is now cimstats.{_RENAMED[name]}; the old name will be removed in the next "
                      f"release.", DeprecationWarning, stacklevel=2)
        return __getattr__(_RENAMED[name])
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'cimstats' has no attribute '{name}'")
    module = importlib.import_module(module_name)
    value = module if module_name == f"cimstats.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
