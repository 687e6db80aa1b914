"""API errors carried as Kubernetes Status objects."""


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
                "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def qualified(rt):
    return rt.plural if not rt.group else f"{rt.plural}.{rt.group}"


def not_found(rt, name):
    return ApiError(404, "NotFound", f'{qualified(rt)} "{name}" not found', {"name": name, "group": rt.group, "kind": rt.plural})


def already_exists(rt, name):
    return ApiError(409, "AlreadyExists", f'{qualified(rt)} "{name}" already exists', {"name": name, "group": rt.group, "kind": rt.plural})


def conflict(rt, name):
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {qualified(rt)} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again", {"name": name, "group": rt.group, "kind": rt.plural})


def invalid(rt, name, field, detail):
    return ApiError(422, "Invalid", f'{rt.kind} "{name}" is invalid: {field}: {detail}',
                    {"name": name, "group": rt.group, "kind": rt.kind, "causes": [{"reason": "FieldValueInvalid", "message": detail, "field": field}]})


def bad_request(message):
    return ApiError(400, "BadRequest", message)
