"""URLs of the REST API, mounted at /api/ by `path("api/", include("mediation.api.urls"))`."""

from __future__ import annotations

from typing import Any

from csp.decorators import csp_update
from django.contrib.auth.decorators import login_required
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from mediation.api import reveal_views, views
from mediation.api.errors import api_not_found

app_name = "api"

# The docs pages: no inline script (Content-Security-Policy); their UI bundles inject styles,
# so these two pages alone allow inline styles. For signed-in staff: a browser without a
# session goes to login.
swagger_view = SpectacularSwaggerSplitView.as_view(
    url_name="api:schema", template_name="api/swagger_ui.html"
)
redoc_view = SpectacularRedocView.as_view(url_name="api:schema", template_name="api/redoc.html")


def docs_page(view: Any) -> Any:
    return login_required(csp_update({"style-src": ["'unsafe-inline'"]})(view))


urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The browsable docs are for signed-in staff: a browser without a session goes to login.
    path("docs/", docs_page(swagger_view), name="docs"),
    path("redoc/", docs_page(redoc_view), name="redoc"),
    path("auth/token/", views.TokenView.as_view(), name="token"),
    path("auth/logout/", views.LogoutView.as_view(), name="logout"),
    path("auth/logout-all/", views.LogoutAllView.as_view(), name="logout-all"),
    path("cases/", views.CaseListView.as_view(), name="case-list"),
    path("cases/disputes/", views.DisputeRegisterView.as_view(), name="dispute-register"),
    path("cases/petitions/", views.PetitionReceiveView.as_view(), name="petition-receive"),
    path("cases/<int:pk>/", views.CaseDetailView.as_view(), name="case-detail"),
    path(
        "cases/<int:pk>/transitions/",
        views.CaseTransitionsView.as_view(),
        name="case-transitions",
    ),
    path(
        "cases/<int:pk>/transitions/<slug:name>/",
        views.CaseTransitionView.as_view(),
        name="case-transition",
    ),
    path("cases/<int:pk>/events/", views.CaseEventsView.as_view(), name="case-events"),
    path("cases/<int:pk>/actions/<slug:name>/", views.CaseActionView.as_view(), name="case-action"),
    path(
        "cases/<int:pk>/attachments/",
        views.CaseAttachmentsView.as_view(),
        name="case-attachments",
    ),
    path(
        "cases/<int:pk>/attachments/<int:attachment_id>/download/",
        views.AttachmentDownloadView.as_view(),
        name="case-attachment-download",
    ),
    path("cases/<int:pk>/sessions/", views.CaseSessionsView.as_view(), name="case-sessions"),
    path("cases/<int:pk>/clocks/", views.CaseClocksView.as_view(), name="case-clocks"),
    path(
        "cases/<int:pk>/refer-to-mediation/",
        views.ReferToMediationView.as_view(),
        name="case-refer-to-mediation",
    ),
    path(
        "cases/<int:pk>/parties/<int:party_id>/reveal/",
        views.PartyRevealView.as_view(),
        name="party-reveal",
    ),
    path(
        "cases/<int:pk>/parties/<int:party_id>/reveal-phone/",
        reveal_views.PartyPhoneRevealView.as_view(),
        name="party-reveal-phone",
    ),
    path("agencies/", views.AgencyListView.as_view(), name="agency-list"),
    path("agencies/<int:pk>/", views.AgencyDetailView.as_view(), name="agency-detail"),
    path("categories/", views.CategoryListView.as_view(), name="category-list"),
    path("channels/", views.ChannelListView.as_view(), name="channel-list"),
    path("deadlines/compute/", views.DeadlineComputeView.as_view(), name="deadline-compute"),
    path("escalations/", views.EscalationQueueView.as_view(), name="escalation-list"),
    path("escalations/<int:pk>/", views.EscalationDetailView.as_view(), name="escalation-detail"),
    path(
        "escalations/<int:pk>/acknowledge/",
        views.EscalationAcknowledgeView.as_view(),
        name="escalation-acknowledge",
    ),
    path(
        "escalations/<int:pk>/reassign/",
        views.EscalationReassignView.as_view(),
        name="escalation-reassign",
    ),
    path(
        "escalations/<int:pk>/approve-extension/",
        views.EscalationApproveExtensionView.as_view(),
        name="escalation-approve-extension",
    ),
    path(
        "escalations/<int:pk>/notes/",
        views.EscalationIssueNoteView.as_view(),
        name="escalation-issue-note",
    ),
    path(
        "escalations/<int:pk>/resolve/",
        views.EscalationResolveView.as_view(),
        name="escalation-resolve",
    ),
    path("notifications/", views.NotificationListView.as_view(), name="notification-list"),
    path(
        "notifications/unread-count/",
        views.NotificationUnreadCountView.as_view(),
        name="notification-unread-count",
    ),
    path(
        "notifications/mark-read/",
        views.NotificationMarkReadView.as_view(),
        name="notification-mark-read",
    ),
    # Anything else under /api/ is a JSON 404 in the API's error shape.
    re_path(r"", csrf_exempt(api_not_found), name="not-found"),
]
