-- a contact is a person or a place, never both
SELECT person.uuid
FROM {{ ref('person') }} AS person
JOIN {{ ref('place') }} AS place ON place.uuid = person.uuid
