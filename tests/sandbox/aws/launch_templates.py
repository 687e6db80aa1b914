"""Launch template versions as EC2 makes them.

moto 5.2 stores CreateLaunchTemplateVersion's UserData as the raw string (launching from
such a version then fails inside moto with HTTP 500) and ignores SourceVersion. EC2 keeps
user data base64-encoded and builds the new version from the source version's data with
the request's top-level keys laid over it.
"""

from __future__ import annotations

import copy

_installed = False


def _version_data(template, source_version, requested: dict) -> dict:
    from moto.ec2.utils import parse_user_data

    data = copy.deepcopy(template.get_version(source_version).data) if source_version else {}
    if "UserData" in requested:
        requested = dict(requested, UserData=parse_user_data(requested["UserData"]))
    data.update(requested)
    return data


def create_launch_template_version(self):
    from moto.core.responses import ActionResult

    name = self._get_param("LaunchTemplateName")
    template_id = self._get_param("LaunchTemplateId")
    template = self.ec2_backend.get_launch_template(template_id) if template_id else self.ec2_backend.get_launch_template_by_name(name)
    data = _version_data(template, self._get_param("SourceVersion"), self._get_param("LaunchTemplateData", {}))
    self.error_on_dryrun()
    version = template.create_version(data, self._get_param("VersionDescription"))
    return ActionResult(
        {
            "LaunchTemplateVersion": {
                "CreateTime": version.create_time,
                "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                "DefaultVersion": template.is_default(version),
                "LaunchTemplateData": version.data,
                "LaunchTemplateId": template.id,
                "LaunchTemplateName": template.name,
                "VersionDescription": version.description,
                "VersionNumber": version.number,
            },
        }
    )


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.ec2.responses.launch_templates import LaunchTemplates

    LaunchTemplates.create_launch_template_version = create_launch_template_version
    _installed = True
