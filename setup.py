"""Package build driven by settings.ini (nbdev 2 convention): metadata and requirements live there."""
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]

requirements = cfg.get("requirements", "").split()
dev_requirements = cfg.get("dev_requirements", "").split()
scripts = [s for s in cfg.get("console_scripts", "").split() if s]
# The paper notebooks and their published tables travel inside the package (`shortcut_nb/papers/`), so an installed
# `shortcut-nb` lists and runs them without a checkout (outputs then go under the current folder).
papers_pkg = f"{cfg['lib_path']}.papers"
# Optional features by name (`pip install "shortcut_nb[dask]"`): settings.ini's `extra_<name> = packages`
extras = {k.removeprefix("extra_"): v.split() for k, v in cfg.items() if k.startswith("extra_")}

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license="Apache-2.0",
    url=cfg["git_url"],
    keywords=cfg["keywords"].split(),
    python_requires=">=" + cfg["min_python"],
    packages=[*setuptools.find_packages(include=[cfg["lib_path"], cfg["lib_path"] + ".*"]), papers_pkg],
    package_dir={papers_pkg: "papers"},
    package_data={papers_pkg: ["*.ipynb", "published/*/*.csv", "published/*/*.md"]},
    include_package_data=True,
    install_requires=requirements,
    extras_require={"dev": dev_requirements, **extras},
    entry_points={"console_scripts": scripts, "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False,
)
